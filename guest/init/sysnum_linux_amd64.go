package main

// sysFinitModule is finit_module(2); package syscall does not define it.
const sysFinitModule = 313
