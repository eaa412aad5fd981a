"""The work: job kinds, the Ray chunk task, the progress tracker, the job runner, storage."""
