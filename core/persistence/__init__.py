"""Durable state at the edge: SQLite storage (WAL, one file), a non-blocking batched writer,
and the optional raw capture journal. Nothing here runs on the strategy loop: the loop only
calls ``StorageWriter.submit`` / ``CaptureJournal.record_*`` which never block."""
