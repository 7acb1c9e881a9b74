"""One driver per kind of operation (jobrelay.domain.operation.OperationKind): what each step of the
state machine does at the vendor for that kind. The step runner (jobrelay.services.steps) keeps what
every kind shares and calls a job's driver without knowing its kind.

  base           Driver: the base the kinds override a little; DriverContext: what drivers share
  async_export   AsyncExportDriver: start at the vendor, wait for its webhook or poll, collect the file
  paged_read     PagedReadDriver: check at start, then collect every page at once; nothing to wait for
  bulk_import    BulkImportDriver: open the import, stage the records file, run it, poll, collect
  directory      Drivers: the driver of a job, over its vendor account's adapter
"""
