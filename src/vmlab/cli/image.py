"""`vmlab image build|ls|rm`: images built locally from Debian packages (recipes in vm-images/)."""

from __future__ import annotations

from typing import Annotated

import typer

from vmlab.cli.output import emit_json, err, errors_to_exit, out, progress_printer

app = typer.Typer(
    help="Build, list and remove guest/container images (from Debian packages).", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


@app.command("build")
def build(
    name: Annotated[str, typer.Argument(help="Recipe in vm-images/ (tiny, micro).")] = "tiny",
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even when the cache entry is sound.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Build NAME (kernel + initramfs + docker import), or reuse the verified cache entry."""
    from vmlab.images import build_image

    with errors_to_exit():
        info = build_image(name, progress=progress_printer("image: "), force=force)
    if json_out:
        emit_json(info.as_dict())
    else:
        out.print(
            f"{info.name} {info.short_digest}  {info.path}\n  kernel {info.manifest.kernel_package}, "
            f"docker {info.docker_tag}",
            highlight=False,
        )


@app.command("ls")
def ls(json_out: JsonOpt = False) -> None:
    """List cached images and whether their outputs still match the manifest."""
    from vmlab.images import list_images

    with errors_to_exit():
        rows = list_images()
    if json_out:
        emit_json(rows)
        return
    if not rows:
        err.print("no images; build one with: vmlab image build tiny")
        return
    from rich.table import Table

    table = Table()
    for col in ("name", "digest", "state", "kernel", "size MiB", "created"):
        table.add_column(col)
    for r in rows:
        size = r.get("size_bytes")
        table.add_row(
            str(r["name"]),
            str(r["digest"])[:12],
            str(r["state"]),
            str(r.get("kernel_release", "")),
            f"{int(size) / 2**20:.1f}" if isinstance(size, int) else "",
            str(r.get("created_at", "")),
        )
    out.print(table)


@app.command("rm")
def rm(
    name: Annotated[str, typer.Argument(help="Image name.")],
    digest: Annotated[str | None, typer.Option(help="Only the entry whose digest starts with this.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Remove cache entries of NAME (and their Docker tags)."""
    from vmlab.images import remove_image

    with errors_to_exit():
        removed = remove_image(name, digest)
    if json_out:
        emit_json({"removed": removed})
    else:
        for d in removed:
            out.print(f"removed {name} {d[:12]}")


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="image")
