"""An engine that reports what photo it was given (its size and digest), for the broker's photo path."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from generation.engines import solid_png
from generation.jobs import GenerationRequest, GenerationResult


class PhotoEngine:
    def run_batch(
        self, requests: list[GenerationRequest], progress: Callable[[int, int, int], None]
    ) -> list[GenerationResult | BaseException]:
        out: list[GenerationResult | BaseException] = []
        for index, request in enumerate(requests):
            photo = request.init_image or b""
            progress(index, 1, 1)
            out.append(
                GenerationResult(
                    png=solid_png(request.size),
                    width=request.size,
                    height=request.size,
                    engine="photo",
                    model=None,
                    spec={
                        **request.spec,
                        "photo_bytes": len(photo),
                        "photo_sha": hashlib.sha256(photo).hexdigest(),
                    },
                    run_s=0.0,
                )
            )
        return out
