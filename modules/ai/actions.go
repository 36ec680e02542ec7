package ai

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/notes"
	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/events"
)

// The shapes of the model's structured answers. Each is asked for as a JSON
// schema and checked against it.

// modelAction is a suggested action as the model writes it.
type modelAction struct {
	Type        string         `json:"type" enum:"complete_task,create_subtasks,update_task"`
	TaskID      string         `json:"task_id"`
	Description string         `json:"description"`
	Data        map[string]any `json:"data"`
}

type chatReply struct {
	Response         string        `json:"response" minLength:"1"`
	SuggestedActions []modelAction `json:"suggested_actions"`
}

type titleOnly struct {
	Title string `json:"title"`
}

type subtaskReply struct {
	Subtasks []titleOnly `json:"subtasks"`
}

// draftReply is a task drafted from a note.
type draftReply struct {
	Title       string      `json:"title" minLength:"1"`
	Description string      `json:"description"`
	Priority    string      `json:"priority" enum:"low,medium,high"`
	DueDate     *string     `json:"due_date" nullable:"true"`
	Subtasks    []titleOnly `json:"subtasks"`
}

var (
	chatShape     = shapeOf[chatReply]("chat_answer")
	actionsShape  = shapeOf[[]modelAction]("suggested_actions")
	subtasksShape = shapeOf[subtaskReply]("subtask_suggestions")
	draftShape    = shapeOf[draftReply]("task_draft")
)

// Action types confirm-action executes.
const (
	ActionCompleteTask   = "complete_task"
	ActionCreateSubtasks = "create_subtasks"
	ActionUpdateTask     = "update_task"
	ActionConvertNote    = "convert_note"
)

// The action_data of each action type. Unknown keys are ignored (a
// suggested action's data carries its description, say).

type subtaskTitle struct {
	_     struct{} `additionalProperties:"true"`
	Title string   `json:"title" minLength:"1" maxLength:"200"`
}

type completeTaskData struct {
	_      struct{} `additionalProperties:"true"`
	TaskID string   `json:"task_id" format:"uuid"`
}

type createSubtasksData struct {
	_        struct{}       `additionalProperties:"true"`
	TaskID   string         `json:"task_id" format:"uuid"`
	Subtasks []subtaskTitle `json:"subtasks" minItems:"1" maxItems:"50"`
}

type updateTaskData struct {
	_                 struct{}   `additionalProperties:"true"`
	TaskID            string     `json:"task_id" format:"uuid"`
	Title             *string    `json:"title,omitempty" minLength:"1" maxLength:"500"`
	Description       *string    `json:"description,omitempty" maxLength:"2000"`
	Priority          *string    `json:"priority,omitempty" enum:"low,medium,high"`
	DueDate           *time.Time `json:"due_date,omitempty"`
	EstimatedDuration *int       `json:"estimated_duration,omitempty" minimum:"1"`
	Version           *int       `json:"version,omitempty" minimum:"1"`
}

// convertNoteData names the note; a title (with the other fields) gives
// the task to create, else the last draft of the note is used, or the
// assistant drafts one.
type convertNoteData struct {
	_           struct{}       `additionalProperties:"true"`
	NoteID      string         `json:"note_id" format:"uuid"`
	Title       *string        `json:"title,omitempty" minLength:"1" maxLength:"500"`
	Description *string        `json:"description,omitempty" maxLength:"2000"`
	Priority    *string        `json:"priority,omitempty" enum:"low,medium,high"`
	DueDate     *time.Time     `json:"due_date,omitempty"`
	Subtasks    []subtaskTitle `json:"subtasks,omitempty" maxItems:"50"`
}

var actionShapes = map[string]*shape{
	ActionCompleteTask:   shapeOf[completeTaskData]("complete_task"),
	ActionCreateSubtasks: shapeOf[createSubtasksData]("create_subtasks"),
	ActionUpdateTask:     shapeOf[updateTaskData]("update_task"),
	ActionConvertNote:    shapeOf[convertNoteData]("convert_note"),
}

// parseAction checks data against the shape of the action type and decodes
// it: a validation error names the field under action_data.
func parseAction(typ string, data map[string]any) (any, error) {
	sh, ok := actionShapes[typ]
	if !ok {
		return nil, apperr.Validation("action_type", "must be one of complete_task, create_subtasks, update_task, convert_note")
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, apperr.Validation("action_data", "must be a JSON object")
	}
	if field, problem := sh.checkField(string(raw)); problem != "" {
		name := "action_data"
		if field != "" {
			name += "." + field
		}
		return nil, apperr.Validation(name, "%s", problem)
	}
	var out any
	switch typ {
	case ActionCompleteTask:
		out = &completeTaskData{}
	case ActionCreateSubtasks:
		out = &createSubtasksData{}
	case ActionUpdateTask:
		out = &updateTaskData{}
	case ActionConvertNote:
		out = &convertNoteData{}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, apperr.Validation("action_data", "%s", err.Error())
	}
	return out, nil
}

// ActionResult is what a confirmed action did.
type ActionResult struct {
	Type             string
	Task             *tasks.TaskInfo
	Subtasks         []tasks.SubtaskInfo
	CreditsUsed      int
	CreditsRemaining int
}

// Confirm executes an action the user confirmed, through the tasks and
// notes modules' faces: the same validation, limits and activity (source
// ai) as their own routes. Ids of another user's rows are 404.
func (s *Service) Confirm(ctx context.Context, p auth.Principal, typ string, data map[string]any) (*ActionResult, error) {
	parsed, err := parseAction(typ, data)
	if err != nil {
		return nil, err
	}
	if c, ok := parsed.(*convertNoteData); ok {
		conv, err := s.convert(ctx, p, uuid.MustParse(c.NoteID), true, c.override())
		if err != nil {
			return nil, err
		}
		return &ActionResult{Type: typ, Task: conv.Task, Subtasks: conv.Subtasks,
			CreditsUsed: conv.CreditsUsed, CreditsRemaining: conv.CreditsRemaining}, nil
	}
	out := &ActionResult{Type: typ, Subtasks: []tasks.SubtaskInfo{}}
	ctx = events.WithSource(ctx, events.SourceAI)
	err = s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := s.act(ctx, tx, p, parsed, out); err != nil {
			return err
		}
		bal, err := s.credits.Balance(ctx, tx, p.UserID)
		out.CreditsRemaining = bal.Total()
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// act carries out a task action in tx.
func (s *Service) act(ctx context.Context, tx *gorm.DB, p auth.Principal, parsed any, out *ActionResult) error {
	switch d := parsed.(type) {
	case *completeTaskData:
		t, _, err := s.editor.CompleteTaskTx(ctx, tx, p, uuid.MustParse(d.TaskID))
		out.Task = t
		return err
	case *createSubtasksData:
		in := make([]tasks.NewSubtask, len(d.Subtasks))
		for i, st := range d.Subtasks {
			in[i] = tasks.NewSubtask{Title: st.Title, Source: tasks.SourceAI}
		}
		taskID := uuid.MustParse(d.TaskID)
		subs, err := s.editor.AddSubtasksTx(ctx, tx, p, taskID, in)
		if err != nil {
			return err
		}
		out.Subtasks = subs
		out.Task, err = s.tasks.OwnedTask(ctx, tx, p.UserID, taskID)
		return err
	case *updateTaskData:
		t, err := s.editor.UpdateTaskTx(ctx, tx, p, uuid.MustParse(d.TaskID), tasks.Changes{Title: d.Title,
			Description: d.Description, Priority: d.Priority, DueDate: d.DueDate,
			EstimatedDuration: d.EstimatedDuration, Version: d.Version})
		out.Task = t
		return err
	}
	return fmt.Errorf("unhandled action %s", out.Type)
}

// override is the task the user gave with a convert_note action, if any.
func (c *convertNoteData) override() *notes.TaskDraft {
	if c.Title == nil {
		return nil
	}
	d := &notes.TaskDraft{Title: strings.TrimSpace(*c.Title), Priority: tasks.PriorityMedium, DueDate: c.DueDate,
		Subtasks: []string{}}
	if c.Description != nil {
		d.Description = *c.Description
	}
	if c.Priority != nil {
		d.Priority = *c.Priority
	}
	for _, st := range c.Subtasks {
		d.Subtasks = append(d.Subtasks, st.Title)
	}
	return d
}
