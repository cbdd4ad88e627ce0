"""The :class:`~runbook_lib.engine.client.Engine`'s image and volume calls: what an image is (id, config,
labels, ENV, history, a summary), a compose project's volumes, and a volume's content copied out without
starting anything."""
from __future__ import annotations

from typing import Any

import docker.errors

from runbook_lib.engine.containers import PROJECT_LABEL
from runbook_lib.engine.sdk import sdk_call, wrap_error


class ImageCalls:
    """Mixed into :class:`~runbook_lib.engine.client.Engine`: uses its ``api`` (the SDK's APIClient)."""

    api: Any

    def image_metadata(self, image_id: str) -> dict[str, Any]:
        """What an image carries that a secret could hide in: its labels, ENV and build history."""
        with sdk_call(f"inspecting image {image_id}"):
            a = self.api.inspect_image(image_id)
            history = self.api.history(image_id)
        cfg = a.get("Config") or {}
        return {"labels": cfg.get("Labels") or {}, "env": cfg.get("Env") or [],
                "history": [h.get("CreatedBy") or "" for h in history]}

    def image_id(self, ref: str) -> str | None:
        """The full id of the image a reference (name:tag or id) points at now; None when missing."""
        try:
            return self.api.inspect_image(ref)["Id"]
        except docker.errors.ImageNotFound:
            return None
        except Exception as exc:  # noqa: BLE001
            raise wrap_error(exc, f"inspecting image {ref}") from exc

    def tag_image(self, image_id: str, repository: str, tag: str) -> str:
        """Give an image (by id) the reference ``repository:tag`` (moved here if another image had it);
        returns the reference."""
        with sdk_call(f"tagging image {image_id[:19]} as {repository}:{tag}"):
            self.api.tag(image_id, repository, tag, force=True)
        return f"{repository}:{tag}"

    def image_config(self, ref: str) -> dict[str, Any]:
        """The image's Config (Env, Healthcheck, ...), {} when the image is missing."""
        try:
            return self.api.inspect_image(ref).get("Config") or {}
        except docker.errors.ImageNotFound:
            return {}
        except Exception as exc:  # noqa: BLE001
            raise wrap_error(exc, f"inspecting image {ref}") from exc

    def image_summary(self, image_id: str) -> dict[str, Any]:
        try:
            a = self.api.inspect_image(image_id)
        except docker.errors.NotFound:
            return {"id": image_id[:19], "missing": True}
        except Exception as exc:  # noqa: BLE001
            raise wrap_error(exc, f"inspecting image {image_id}") from exc
        return {"id": a["Id"][:19], "tags": a.get("RepoTags") or [], "digests": a.get("RepoDigests") or [],
                "created": a.get("Created", "")[:19], "size_mb": round(a.get("Size", 0) / 1e6, 1)}

    def project_volumes(self, project: str) -> list[dict[str, Any]]:
        with sdk_call("listing volumes"):
            vols = self.api.volumes(filters={"label": f"{PROJECT_LABEL}={project}"}).get("Volumes") or []
        return sorted(
            ({"name": v["Name"], "created": v.get("CreatedAt", ""), "driver": v.get("Driver", ""),
              "volume": v.get("Labels", {}).get("com.docker.compose.volume", "")} for v in vols),
            key=lambda v: v["name"],
        )

    def archive_volume(self, volume: str, image: str, dest) -> int:
        """Copy a volume's content into ``dest`` (a tar file) without starting anything: a container
        is created (never started) with the volume mounted, and the engine streams the mount as tar."""
        with sdk_call(f"archiving volume {volume}"):
            c = self.api.create_container(image, command=["true"], volumes=["/volume"],
                                          host_config=self.api.create_host_config(binds={volume: {"bind": "/volume", "mode": "ro"}}),
                                          labels={"org.runbook.purpose": "volume-archive"})
            try:
                stream, _ = self.api.get_archive(c["Id"], "/volume")
                size = 0
                with open(dest, "wb") as fh:
                    for chunk in stream:
                        fh.write(chunk)
                        size += len(chunk)
                return size
            finally:
                self.api.remove_container(c["Id"], force=True)
