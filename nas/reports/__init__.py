"""Reports that read a run's ledger: the search's report, a rediscovery's, two runs compared."""
