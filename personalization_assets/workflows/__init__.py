"""service workflows used by stage assets: bounded-concurrency calls, caching, retries of content; may import lib,
store, config, resources; no dagster"""
