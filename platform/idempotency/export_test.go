package idempotency

// ClaimSQL is the claim's statement per dialect (true: PostgreSQL).
var ClaimSQL = claimSQL
