package compile

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestGoListenPorts(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		want  []PortHint
	}{
		{"ListenAndServe", map[string]string{"main.go": `package main
import "net/http"
func main() {
	http.HandleFunc("/", nil)
	http.ListenAndServe(":9090", nil)
}`}, []PortHint{{9090, "main.go:5", "http.ListenAndServe"}}},
		{"net.Listen and a server's Addr", map[string]string{"main.go": `package main
import ("net"; "net/http")
func main() {
	l, _ := net.Listen("tcp", "0.0.0.0:7000")
	_ = l
	s := &http.Server{Addr: ":7001"}
	s.ListenAndServe()
}`}, []PortHint{{7000, "main.go:4", "net.Listen"}, {7001, "main.go:6", "a server's Addr"}}},
		{"PORT default", map[string]string{"main.go": `package main
import ("net/http"; "os")
func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "3000"
	}
	http.ListenAndServe(":"+port, nil)
}`}, []PortHint{{3000, "main.go:6", "the default of the PORT environment variable"}}},
		{"cmp.Or", map[string]string{"main.go": `package main
import ("cmp"; "net/http"; "os")
func main() { http.ListenAndServe(":"+cmp.Or(os.Getenv("PORT"), "8081"), nil) }`},
			[]PortHint{{8081, "main.go:3", "the default of the PORT environment variable"}}},
		{"flag default", map[string]string{"main.go": `package main
import ("flag"; "net/http")
var addr = flag.String("listen", ":5000", "address")
var p = flag.Int("port", 5001, "port")
func main() { flag.Parse(); http.ListenAndServe(*addr, nil) }`},
			[]PortHint{{5000, "main.go:3", "the default of flag -listen"}, {5001, "main.go:4", "the default of flag -port"}}},
		{"loopback only and nothing else", map[string]string{"main.go": `package main
import "net/http"
func main() { http.ListenAndServe("127.0.0.1:9999", nil) }`}, nil},
		{"in another package of the module", map[string]string{
			"main.go":              "package main\nimport \"example.com/app/internal/server\"\nfunc main() { server.Run() }\n",
			"internal/server/s.go": "package server\nimport \"net/http\"\nfunc Run() { http.ListenAndServe(\":6060\", nil) }\n",
			"vendor/x/x.go":        "package x\nimport \"net/http\"\nfunc F() { http.ListenAndServe(\":1111\", nil) }\n",
			"server_test.go":       "package main\nimport \"net/http\"\nfunc T() { http.ListenAndServe(\":2222\", nil) }\n",
		}, []PortHint{{6060, "internal/server/s.go:3", "http.ListenAndServe"}}},
		{"nothing", map[string]string{"main.go": "package main\nfunc main() {}\n", "bad.go": "not go"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, src := range c.files {
				p := filepath.Join(dir, name)
				os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := GoListenPorts(dir); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v\nwant %+v", got, c.want)
			}
		})
	}
}
