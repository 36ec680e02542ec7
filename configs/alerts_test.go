package configs_test

import (
	"os/exec"
	"testing"

	"github.com/perpetuaflow/api/test/testkit"
)

// The alert rules are valid Prometheus rules, and each fires on what it is
// about (alerts_test.yml, promtool's unit tests).
func TestAlertRules(t *testing.T) {
	promtool := testkit.Tool(t, "promtool", "prometheus")
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
