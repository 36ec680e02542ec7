package ai

// This file and events.go are the module's public face. The assistant
// offers other modules no interface of its own: it provides the notes
// module's notes.Transcriber (voice notes get their text through it) and
// notes.Converter (the notes module's convert route drafts and makes a
// task through it), and acts on tasks and notes only through their faces.
