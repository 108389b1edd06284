"""The Glue Data Catalog side of lakegov: converted Parquet becomes queryable tables.

Two ways per dataset, both ending in ``DatasetRefreshed``: *direct* registration of the
table and its partitions from the Parquet schema (:mod:`lakegov.catalog.direct`), or the
dataset's Glue crawler, started once per burst of files (:mod:`lakegov.catalog.crawler`).
"""
