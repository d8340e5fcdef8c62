package address

import (
	"slices"
	"testing"

	"github.com/unikfile/unikfile/state"
)

func TestInstancesAndTargetsOf(t *testing.T) {
	insts := []*state.Instance{
		{ID: "1", Project: "/w", Target: "dev", App: "web"},
		{ID: "2", Project: "/w/services/api", Target: "dev", App: "api"},
		{ID: "3", Project: "/w/services/api", Target: "prod", App: "api"},
		{ID: "4", Project: "/elsewhere", Target: "dev", App: "x"},
	}
	ids := func(l []*state.Instance) []string {
		var out []string
		for _, i := range l {
			out = append(out, i.ID)
		}
		return out
	}
	for _, c := range []struct {
		addrs []string
		want  []string
	}{
		{[]string{"./..."}, []string{"1", "2", "3"}},
		{[]string{"./...:dev"}, []string{"1", "2"}},
		{[]string{"services/api"}, []string{"2", "3"}},
		{[]string{"services/api:api"}, []string{"2", "3"}}, // an app name matches too
		{[]string{"web"}, []string{"1"}},
	} {
		addrs, err := ParseAll(c.addrs)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(Instances(addrs, "/w", insts)); !slices.Equal(got, c.want) {
			t.Errorf("Instances(%v) = %v, want %v", c.addrs, got, c.want)
		}
	}
	addrs, _ := ParseAll([]string{"./...:dev", "services/api"})
	got := TargetsOf(addrs, "/w", insts)
	want := []TargetRef{{"/w", "dev"}, {"/w/services/api", "dev"}, {"/w/services/api", ""}}
	if !slices.Equal(got, want) {
		t.Errorf("TargetsOf = %v, want %v (each once, app names never taken for targets)", got, want)
	}
}
