package pack

import "context"

// KernelFetcher is a base whose kernel `unikfile kernel fetch --base NAME`
// downloads into the cache (checked by digest); the linux base's fetch,
// with its Debian package option, is the CLI's own.
type KernelFetcher interface {
	// FetchKernel fills cacheDir's kernel cache and returns where the
	// kernel now is; say reports progress.
	FetchKernel(ctx context.Context, cacheDir string, say func(string)) (string, error)
}
