package includeos

import (
	"strings"
	"testing"
)

func TestCmdline(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
		err  string
	}{
		{nil, "", ""},
		{[]string{"--port", "8080", "a=b,c"}, "--port 8080 a=b,c", ""},
		{[]string{"héllo", "$HOME", "{x};#"}, "héllo $HOME {x};#", ""},
		{[]string{`"quoted"`}, "", "a quote or a backslash"},
		{[]string{`it's`}, "", "a quote or a backslash"},
		{[]string{`a\\b`}, "", "a quote or a backslash"},
		{[]string{"two words"}, "", "white space"},
		{[]string{"tab\there"}, "", "white space"},
		{[]string{"bell\a"}, "", "control character"},
		{[]string{""}, "", "empty argument"},
		{[]string{strings.Repeat("x", MaxCmdline+1)}, "", "more than the 4096"},
	} {
		got, err := Cmdline(tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Cmdline(%q): %q, %v; want an error with %q", tc.args, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Cmdline(%q) = %q, %v; want %q", tc.args, got, err, tc.want)
		}
	}
}
