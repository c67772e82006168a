"""Write a folder of large images from an image folder: the test bed of ``--data-mode stream``.

Takes every ``--step``-th training and test image of ``--data-dir``, resizes it to ``--size`` pixels
(CIFAR-10's 32 px become 256 px, 64 times the pixels) and writes it as JPEG under
``--output/{train,test}/<class>/``, so that training at ``--image-size 64`` must decode and shrink
every file: in memory (decoded once, the whole set held) or streamed (decoded per batch).

    python benchmarks/large_folder.py --data-dir ../shared/data/cifar10-jpeg --output /tmp/large --step 15
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from torchvision.io import write_jpeg  # noqa: E402
from tqdm import tqdm  # noqa: E402

from utils.data.decode import decode_resized  # noqa: E402
from utils.data.image_folder import list_image_folder  # noqa: E402
from utils.errors import OneLineArgumentParser, UserError, exit_on_user_error, whole_number  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(prog="large_folder.py", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="an image folder with train/ and test/")
    parser.add_argument("--output", required=True, help="where the large copy is written")
    parser.add_argument("--size", type=whole_number(1, 4096), default=256, help="side of the written images (default 256)")
    parser.add_argument("--step", type=whole_number(1), default=15, help="keep every N-th image (default 15)")
    parser.add_argument("--quality", type=whole_number(1, 100), default=90, help="JPEG quality 1-100 (default 90)")
    args = parser.parse_args(argv)
    source, output = Path(args.data_dir).resolve(), Path(args.output).resolve()
    if output == source or source in output.parents or output in source.parents:
        raise UserError(f"--output {args.output} overlaps --data-dir {args.data_dir}: the copy would write into the "
                        f"data it reads; choose a folder outside it")
    existing = next(folder for folder in (output, *output.parents) if folder.exists())
    if not existing.is_dir():  # checked before the first image, not after a progress bar has started
        raise UserError(f"cannot create --output {args.output}: {existing} is a file")
    listing = list_image_folder(Path(args.data_dir))
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create --output {args.output} ({error.strerror or error})") from None
    written = 0
    for split, files in (("train", listing.train), ("test", listing.test)):
        for path, label in tqdm(files[::args.step], desc=split):
            target = Path(args.output) / split / listing.classes[label] / (path.stem + ".jpg")
            target.parent.mkdir(parents=True, exist_ok=True)
            write_jpeg(decode_resized(path, args.size), str(target), quality=args.quality)
            written += 1
    print(f"{written} images of {args.size}x{args.size} written under {args.output}")


if __name__ == "__main__":
    with exit_on_user_error("large_folder.py", file_errors=True):
        main()
