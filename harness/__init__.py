"""harness: executes Alembic migrations on real PostgreSQL and checks that they are safe."""
