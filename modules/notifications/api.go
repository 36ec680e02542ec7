package notifications

// This file and events.go are the module's public face. Other modules
// need nothing from notifications: it reacts to their events (reminders
// due, achievements, transcriptions, payments) and tells the user.
