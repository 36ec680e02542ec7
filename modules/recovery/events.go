package recovery

// The bin publishes no events and subscribes to none: a module buries and
// restores its items through the Bin and its Recoverer, in its own
// transaction, and publishes its own events for them.
