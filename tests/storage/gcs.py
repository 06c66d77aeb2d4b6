"""A Google Cloud Storage emulator (PyPI's gcp-storage-emulator) on a free 127.0.0.1 port, with a bucket
`models`, as a `gs://` store: google-cloud-storage (and so MLflow) talks to it through STORAGE_EMULATOR_HOST."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.storage.emulator import Emulator

EMULATOR = Path(sys.executable).with_name("gcp-storage-emulator")
BUCKET = "models"


class GcsEmulator(Emulator):
    """A running gcp-storage-emulator we started (data under `work`), stopped by its fixture."""

    name, program, data = "gcs", EMULATOR, ".cloudstorage"
    missing = "gcp-storage-emulator is not installed: run scripts/setup.sh (it is in the dev extra)"

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.env = {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{self.port}"}

    def arguments(self) -> list[str]:
        return ["start", "--host", "127.0.0.1", "--port", str(self.port), "--default-bucket", BUCKET, "--quiet"]

    def _bucket(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project="test", credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": self.env["STORAGE_EMULATOR_HOST"]}).bucket(BUCKET)

    @staticmethod
    def uri(key: str) -> str:
        return f"gs://{BUCKET}/{key}"

    def put(self, key: str, path: Path) -> None:
        self._bucket().blob(key).upload_from_filename(str(path))

    def delete(self, key: str) -> None:
        self._bucket().blob(key).delete()

    def keys(self, prefix: str) -> list[str]:
        return sorted(b.name for b in self._bucket().list_blobs(prefix=prefix))

    def bad_credentials(self) -> dict[str, str]:
        """A credentials file that is none (the emulator itself checks no credentials)."""
        broken = self.work / "service-account.json"
        broken.write_text('{"type": "service_account", "client_email": "ci@example.iam.gserviceaccount.com"}')
        return {**self.env, "GOOGLE_APPLICATION_CREDENTIALS": str(broken)}

    @staticmethod
    def unreachable(port: int) -> dict[str, str]:
        """The store's settings with its endpoint at `port`, where nothing listens."""
        return {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}"}
