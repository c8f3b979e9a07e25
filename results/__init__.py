"""Results: the database schema and the aggregation that turns decisions into leaderboards."""
