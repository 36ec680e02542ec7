package gamification

// This file and events.go are the module's public face. The module also
// provides perks.Bonus (package perks: the part of this face that the
// modules whose limits perks raise can import without a cycle).
