"""The changelog: what each batch writes (records, parts, the commit marker) and how
its committed state is read back, by a worker restoring a partition and by the exporter
following every partition. Pure: bytes in, bytes out."""
