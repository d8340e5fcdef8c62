package pipeline

import (
	"path/filepath"
	"sync"

	"github.com/unikfile/unikfile/stages/compile"
	"github.com/unikfile/unikfile/stages/package/linux"
)

// memo holds what every node of one run would otherwise compute again:
// the resolved kernel and its modules' digest, per kernel setting, and the
// toolchains' identities. It lives in Env, so it lasts one command.
type memo struct {
	mu         sync.Mutex
	kernels    map[string]*kernelResult
	toolchains compile.Memo
}

type kernelResult struct {
	once    sync.Once
	k       *linux.Kernel
	modules string
	err     error
}

// kernel resolves the kernel for setting (an app's linux.kernel, "" for
// the default) and digests its modules, once per run.
func (env *Env) kernel(setting string, environ []string) (*linux.Kernel, string, error) {
	env.memo.mu.Lock()
	if env.memo.kernels == nil {
		env.memo.kernels = map[string]*kernelResult{}
	}
	r, ok := env.memo.kernels[setting]
	if !ok {
		r = &kernelResult{}
		env.memo.kernels[setting] = r
	}
	env.memo.mu.Unlock()
	r.once.Do(func() {
		r.k, r.err = linux.ResolveKernelWith(setting, env.Cache.Dir(), environ, env.Digests.FileDigest)
		if r.err == nil {
			r.modules, r.err = linux.ModulesDigestWith(r.k, env.Digests.FileDigest)
		}
		// What a later run's kernel choice and module closure depend on.
		env.Digests.Saw(filepath.Join(env.Cache.Dir(), "kernels"))
		if r.err == nil && r.k.ModulesDir != "" {
			env.Digests.SawTree(r.k.ModulesDir)
		}
	})
	return r.k, r.modules, r.err
}
