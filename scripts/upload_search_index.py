"""Upload the approved content library to the Azure AI Search index configured in config/retrieval.yaml.

    .venv/bin/python scripts/upload_search_index.py [--content data/content] [--config config]

Creates the index (fields + semantic configuration) if it is missing, uploads every approved document and
deletes indexed documents that are no longer approved. Auth and endpoint come from the `azure:` section
(managed identity by default; `auth: api_key` reads the key from the environment variable `api_key_env`).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from personalization_assets.config import ENV_CONFIG, ENV_CONTENT, default_path, load_yaml_model  # noqa: E402
from personalization_assets.lib.retrieval import RetrievalConfig  # noqa: E402
from resources.search import upload_content_library  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", default=default_path(ENV_CONTENT, "data/content"), help="content folder")
    parser.add_argument("--config", default=default_path(ENV_CONFIG, "config"), help="configuration folder")
    args = parser.parse_args(argv)
    config = load_yaml_model(Path(args.config) / "retrieval.yaml", RetrievalConfig)
    report = upload_content_library(args.content, config)
    print(
        f"index '{report.index_name}' ({'created' if report.index_created else 'existing'}): "
        f"{report.uploaded} approved document(s) uploaded, {len(report.deleted)} removed "
        f"({', '.join(report.deleted) or 'none'}); content version {report.content_version[:12]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
