// Command unikfile builds apps into unikernels and runs them, from a
// declarative Unikfile. This package is the CLI only: flags, output and exit
// codes. Everything it does is done by the packages it calls.
package main
