"""Bulk imports, the Prepare step's side: a records file read from S3 as a stream, checked, and cut
into the vendor's stage requests, with a checkpoint so that a retried step neither sends a batch
twice nor loses one.

  records   read_records, read_header, sniff   the file's lines as records, or why one is unreadable
  batches   validate_records, cut_batches,     records the vendor accepts, in batches within its
            Checkpoint                         BatchLimits; where to resume
"""
