// Package pack (folder stages/package: "package" is a Go keyword) turns an app bundle (the compile stage's output) into
// bootable images: it joins the bundle with a base (linux and osv today;
// rump, mirage and includeos later) and writes the image formats targets
// boot.
//
// It must not compile sources or run images; it reads a bundle directory and
// writes an image directory, nothing else.
package pack
