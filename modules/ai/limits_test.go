package ai

import (
	"testing"

	"github.com/perpetuaflow/api/modules/tasks"
)

// TestActionShapesKeepToTheTasksLimits: the lengths the confirmed actions
// accept are the tasks module's (its face's constants; struct tags cannot
// name them, so this holds the tags to them).
func TestActionShapesKeepToTheTasksLimits(t *testing.T) {
	maxLength := func(sh *shape, path ...string) int {
		s := sh.schema
		for _, p := range path {
			if s.Ref != "" {
				s = sh.registry.SchemaFromRef(s.Ref)
			}
			if p == "[]" {
				s = s.Items
			} else {
				s = s.Properties[p]
			}
			if s == nil {
				t.Fatalf("%s: no %v", sh.name, path)
			}
		}
		if s.Ref != "" {
			s = sh.registry.SchemaFromRef(s.Ref)
		}
		if s.MaxLength == nil {
			t.Fatalf("%s %v: no maxLength", sh.name, path)
		}
		return *s.MaxLength
	}
	for _, c := range []struct {
		action string
		path   []string
		want   int
	}{
		{ActionCreateSubtasks, []string{"subtasks", "[]", "title"}, tasks.MaxSubtaskTitleLength},
		{ActionConvertNote, []string{"subtasks", "[]", "title"}, tasks.MaxSubtaskTitleLength},
		{ActionUpdateTask, []string{"title"}, tasks.MaxTitleLength},
		{ActionUpdateTask, []string{"description"}, tasks.MaxDescriptionLength},
		{ActionConvertNote, []string{"title"}, tasks.MaxTitleLength},
		{ActionConvertNote, []string{"description"}, tasks.MaxDescriptionLength},
	} {
		if got := maxLength(actionShapes[c.action], c.path...); got != c.want {
			t.Errorf("%s %v: maxLength %d, the tasks module allows %d", c.action, c.path, got, c.want)
		}
	}
}
