package activity

// This file is the module's public face.

// EntityTypes are the entity types an activity entry may have: the web
// client's schema knows these seven and rejects a whole list for any other
// value. What has no type of its own is logged under the one it belongs to
// (a focus session, a template: their task); credit movements are not
// activity (the credit history is their record). test/contract checks that
// every entity type the code can write is one of these.
var EntityTypes = []string{"task", "subtask", "note", "reminder", "subscription", "achievement", "ai_chat"}
