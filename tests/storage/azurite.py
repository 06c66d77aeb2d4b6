"""Azurite, Microsoft's Azure Storage emulator (npm; `scripts/setup.sh --system` installs it into .tools/azurite): its
Blob service on a free 127.0.0.1 port, with a container `models`, as a `wasbs://` store."""

from __future__ import annotations

from pathlib import Path

from tests.storage.emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]
AZURITE = ROOT / ".tools" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
# Azurite's well-known development account (its documentation publishes the key)
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONTAINER = "models"


def connection_string(port: int, key: str = KEY) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};")


class Azurite(Emulator):
    """A running Azurite Blob service we started (data under `work`), stopped by its fixture."""

    name, program, data = "azure", AZURITE, "data"
    missing = "Azurite is not installed: run scripts/setup.sh --system (npm installs it)"

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.env = {"AZURE_STORAGE_CONNECTION_STRING": connection_string(self.port)}
        self._client().create_container(CONTAINER)

    def arguments(self) -> list[str]:
        return ["--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--location", str(self.work / self.data),
                "--disableTelemetry", "--skipApiVersionCheck", "--silent"]

    def _client(self):
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.env["AZURE_STORAGE_CONNECTION_STRING"])

    @staticmethod
    def uri(key: str) -> str:
        return f"wasbs://{CONTAINER}@{ACCOUNT}.blob.core.windows.net/{key}"

    def put(self, key: str, path: Path) -> None:
        with path.open("rb") as data:
            self._client().get_blob_client(CONTAINER, key).upload_blob(data, overwrite=True)

    def delete(self, key: str) -> None:
        self._client().get_blob_client(CONTAINER, key).delete_blob()

    def keys(self, prefix: str) -> list[str]:
        return sorted(b.name for b in self._client().get_container_client(CONTAINER).list_blobs(prefix))

    def bad_credentials(self) -> dict[str, str]:
        """The store's address with another account key: Azurite refuses the request's signature."""
        return {"AZURE_STORAGE_CONNECTION_STRING": connection_string(self.port, KEY[:-4] + "AAA=")}

    @staticmethod
    def unreachable(port: int) -> dict[str, str]:
        """The store's settings with its endpoint at `port`, where nothing listens."""
        return {"AZURE_STORAGE_CONNECTION_STRING": connection_string(port)}
