"""Runners: where a data product's dbt job runs (local, CodeBuild, Step Functions, MWAA, ECS)."""
