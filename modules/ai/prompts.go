package ai

import (
	"fmt"
	"strings"
	"time"

	"github.com/perpetuaflow/api/modules/tasks"
)

// Every prompt the assistant sends lives in this file.

const systemPrompt = `You are Perpetua, the assistant of a task manager. You help the user plan,
break down and finish their tasks. Be brief, concrete and kind. Today is %s (UTC).
Never invent tasks or ids: refer only to the tasks listed in the context.`

// chatJSONPrompt asks for the structured chat answer (chatAnswer).
const chatJSONPrompt = `Answer the user's message. Reply with a JSON object:
{"response": "<your answer in plain text>", "suggested_actions": [<actions>]}.
An action suggests a change the user may confirm; use only the ids of the tasks in the context:
{"type": "complete_task", "task_id": "<id>", "description": "<why>", "data": {}}
{"type": "create_subtasks", "task_id": "<id>", "description": "<why>", "data": {"subtasks": [{"title": "..."}]}}
{"type": "update_task", "task_id": "<id>", "description": "<why>", "data": {"priority": "high"}}
Suggest at most 3 actions, or none.`

// actionsMarker separates a streamed answer from the actions after it.
const actionsMarker = "\nACTIONS:"

// chatStreamPrompt asks for a plain-text answer, then the actions.
const chatStreamPrompt = `Answer the user's message in plain text. If you suggest changes, end your answer with a
new line that starts with ACTIONS: followed by a JSON array of actions, each one of:
{"type": "complete_task" | "create_subtasks" | "update_task", "task_id": "<id from the context>",
"description": "<why>", "data": {...}}. Suggest at most 3 actions; write no ACTIONS line when you have none.`

// subtasksPrompt asks for at most n subtasks of a task (subtaskSuggestions).
const subtasksPrompt = `Break the task below into at most %d concrete, short subtasks (each under 100 characters),
in the order they should be done. Reply with a JSON object: {"subtasks": [{"title": "..."}]}.`

// convertPrompt asks for a task drafted from a note (taskDraft).
const convertPrompt = `Turn the note below into one task. Reply with a JSON object:
{"title": "<short title>", "description": "<details from the note>", "priority": "low" | "medium" | "high",
"due_date": "<RFC 3339 date-time, only if the note names one, else null>",
"subtasks": [{"title": "..."}]} with at most %d subtasks. Keep the description under %d characters.`

// retryPrompt follows an answer that did not match the requested shape.
const retryPrompt = `Your previous reply was not valid: %s. Reply again with only the JSON object requested.`

func system(now time.Time) string {
	return fmt.Sprintf(systemPrompt, now.UTC().Format("Monday 2 January 2006"))
}

// describeTasks lists tasks for the model.
func describeTasks(list []tasks.TaskInfo) string {
	if len(list) == 0 {
		return "The user has no open tasks."
	}
	var b strings.Builder
	b.WriteString("The user's open tasks:\n")
	for _, t := range list {
		fmt.Fprintf(&b, "- id %s: %q, priority %s", t.ID, t.Title, t.Priority)
		if t.DueDate != nil {
			fmt.Fprintf(&b, ", due %s", t.DueDate.UTC().Format(time.RFC3339))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// describeTask shows one task with its subtasks.
func describeTask(t *tasks.TaskInfo, subtasks []tasks.SubtaskInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "The task in focus: id %s: %q, priority %s", t.ID, t.Title, t.Priority)
	if t.DueDate != nil {
		fmt.Fprintf(&b, ", due %s", t.DueDate.UTC().Format(time.RFC3339))
	}
	if t.Description != "" {
		fmt.Fprintf(&b, "\nDescription: %s", t.Description)
	}
	for _, st := range subtasks {
		done := " "
		if st.Completed {
			done = "x"
		}
		fmt.Fprintf(&b, "\n[%s] %s", done, st.Title)
	}
	return b.String()
}
