"""Dataset adapters, on small annotation files written here in each dataset's official format: the rows, labels,
splits, segments, vocabularies and kinds they produce, and the errors malformed files get."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from ovmlv import cli
from ovmlv.commands import adapt as command
from ovmlv.training.adapters.manifest import clean_label, split_camel_case
from ovmlv.training.adapters.tfrecord import crc32c, masked_crc32c


def adapt(tmp_path: Path, *argv: str) -> tuple[dict, list[dict], list[str], dict | None]:
    """Run `ovmlv adapt ARGV`'s work; return its summary, the manifest rows, the vocabulary and the kinds."""
    parser, _ = cli.parser_for("adapt")
    summary = command.adapt(
        parser.parse_args([*argv, "--videos", str(tmp_path / "videos"), "--out", str(tmp_path / "out")])
    )
    rows = [json.loads(line) for line in Path(summary["manifest"]).read_text().splitlines()]
    vocabulary = Path(summary["vocabulary"]).read_text().splitlines()
    kinds = json.loads(Path(summary["kinds"]).read_text()) if summary["kinds"] else None
    return summary, rows, vocabulary, kinds


def failure(tmp_path: Path, capsys, *argv: str) -> str:
    """The one-line message `ovmlv adapt ARGV` fails with (exit code 1)."""
    code = cli.main(["adapt", *argv, "--videos", str(tmp_path / "videos"), "--out", str(tmp_path / "out")])
    message = capsys.readouterr().err
    assert code == 1 and message.startswith("ovmlv adapt: error: ") and message.count("\n") == 1
    return message


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_label_names():
    assert split_camel_case("ApplyEyeMakeup") == "apply eye makeup"
    assert split_camel_case("YoYo") == "yo yo"
    assert clean_label("bow_(weapon)") == "bow (weapon)"
    assert clean_label("baby_buggy") == "baby buggy"


# --- TAO ---------------------------------------------------------------------------------------------------------

TAO = {
    "videos": [
        {"id": 1, "name": "val/YFCC100M/v_a", "neg_category_ids": [], "not_exhaustive_category_ids": []},
        {"id": 2, "name": "val/LaSOT/b", "neg_category_ids": [], "not_exhaustive_category_ids": []},
        {"id": 3, "name": "val/HACS/c", "neg_category_ids": [], "not_exhaustive_category_ids": []},
    ],
    "images": [{"id": 10, "video_id": 1, "file_name": "val/YFCC100M/v_a/frame0001.jpg", "frame_index": 0}],
    "tracks": [
        {"id": 100, "category_id": 41, "video_id": 1},
        {"id": 101, "category_id": 7, "video_id": 1},
        {"id": 102, "category_id": 41, "video_id": 2},
    ],
    "annotations": [
        {"id": 1000, "image_id": 10, "video_id": 1, "track_id": 100, "category_id": 41, "bbox": [0, 0, 5, 5]},
        {"id": 1001, "image_id": 11, "video_id": 2, "track_id": 103, "category_id": 95, "bbox": [1, 1, 5, 5]},
    ],
    "categories": [
        {"id": 7, "name": "baby_buggy", "synset": "baby_buggy.n.01"},
        {"id": 41, "name": "bow_(weapon)", "synset": "bow.n.04"},
        {"id": 95, "name": "person", "synset": "person.n.01"},
        {"id": 200, "name": "unused_category", "synset": "unused.n.01"},
    ],
}


def test_tao(tmp_path):
    annotations = write(tmp_path / "validation.json", json.dumps(TAO))
    summary, rows, vocabulary, kinds = adapt(tmp_path, "tao", "--annotations", str(annotations))
    assert [row["labels"] for row in rows] == [["baby buggy", "bow (weapon)"], ["bow (weapon)", "person"]]
    assert [row["video"] for row in rows] == ["../videos/val/YFCC100M/v_a.mp4", "../videos/val/LaSOT/b.mp4"]
    assert "start" not in rows[0] and rows[0]["source"] == "tao"
    assert vocabulary == ["baby buggy", "bow (weapon)", "person"]  # used categories only
    assert kinds is None
    assert summary["notes"] == ["1 videos without tracks left out"]


def test_tao_errors(tmp_path, capsys):
    no_categories = write(tmp_path / "a.json", json.dumps({key: v for key, v in TAO.items() if key != "categories"}))
    message = failure(tmp_path, capsys, "tao", "--annotations", str(no_categories))
    assert str(no_categories) in message and "lacks key(s) ['categories']" in message
    held_out = write(tmp_path / "test.json", json.dumps({"videos": TAO["videos"], "categories": TAO["categories"]}))
    assert "held out" in failure(tmp_path, capsys, "tao", "--annotations", str(held_out))
    assert "not found" in failure(tmp_path, capsys, "tao", "--annotations", str(tmp_path / "missing.json"))


# --- ActivityNet -------------------------------------------------------------------------------------------------

ACTIVITYNET = {
    "version": "VERSION 1.3",
    "taxonomy": [
        {"nodeId": 0, "nodeName": "Root", "parentId": None, "parentName": None},
        {"nodeId": 1, "nodeName": "Sports", "parentId": 0, "parentName": "Root"},
        {"nodeId": 2, "nodeName": "Long jump", "parentId": 1, "parentName": "Sports"},
        {"nodeId": 3, "nodeName": "Javelin throw", "parentId": 1, "parentName": "Sports"},
        {"nodeId": 4, "nodeName": "Drinking beer", "parentId": 0, "parentName": "Root"},
    ],
    "database": {
        "vidA": {
            "subset": "training",
            "url": "https://www.youtube.com/watch?v=vidA",
            "duration": 100.0,
            "resolution": "640x360",
            "annotations": [
                {"segment": [1.5, 20.0], "label": "Long jump"},
                {"segment": [30.0, 120.0], "label": "Javelin throw"},
                {"segment": [40.0, 50.0], "label": "Long jump"},
            ],
        },
        "vidB": {
            "subset": "validation",
            "url": "https://www.youtube.com/watch?v=vidB",
            "duration": 12.5,
            "resolution": "640x360",
            "annotations": [{"segment": [0.0, 5.0], "label": "Drinking beer"}],
        },
        "vidC": {"subset": "testing", "url": "", "duration": 10.0, "resolution": "640x360", "annotations": []},
    },
}


def test_activitynet(tmp_path):
    annotations = str(write(tmp_path / "activity_net.v1-3.min.json", json.dumps(ACTIVITYNET)))
    _, rows, vocabulary, _ = adapt(tmp_path, "activitynet", "--annotations", annotations, "--split", "train")
    assert rows == [
        {"video": "../videos/v_vidA.mp4", "labels": ["Long jump", "Javelin throw"], "source": "activitynet_train"}
    ]
    assert vocabulary == ["Long jump", "Javelin throw", "Drinking beer"]  # the taxonomy's leaves
    _, rows, _, _ = adapt(tmp_path, "activitynet", "--annotations", annotations, "--split", "train", "--segments")
    assert [(row["labels"], row["start"], row["end"]) for row in rows] == [
        (["Long jump"], 1.5, 20.0),
        (["Javelin throw"], 30.0, 100.0),  # clipped to the duration
        (["Long jump"], 40.0, 50.0),
    ]
    _, rows, _, _ = adapt(tmp_path, "activitynet", "--annotations", annotations, "--split", "val")
    assert [row["labels"] for row in rows] == [["Drinking beer"]]


def test_activitynet_errors(tmp_path, capsys):
    annotations = str(write(tmp_path / "anet.json", json.dumps(ACTIVITYNET)))
    assert "held out" in failure(tmp_path, capsys, "activitynet", "--annotations", annotations, "--split", "test")
    broken = json.loads(json.dumps(ACTIVITYNET))
    broken["database"]["vidB"]["annotations"][0]["label"] = "Surfing"
    annotations = str(write(tmp_path / "anet.json", json.dumps(broken)))
    message = failure(tmp_path, capsys, "activitynet", "--annotations", annotations, "--split", "val")
    assert "'Surfing', not a taxonomy leaf" in message and annotations in message
    write(tmp_path / "anet.json", "{not json")
    assert "is not valid JSON" in failure(
        tmp_path, capsys, "activitynet", "--annotations", annotations, "--split", "val"
    )


# --- RareAct -----------------------------------------------------------------------------------------------------

RAREACT = """id,video_id,start,end,class_id,verb,noun,annotation
0,vidA,10,20,0,cut,laptop,1
1,vidA,10,20,1,drink,laptop,3
2,vidB,0,10,2,microwave,phone,2
3,vidC,30,40,3,cut,microwave,4
4,vidD,0,10,0,cut,laptop,0
5,vidA,10,20,0,cut,laptop,1
"""


def test_rareact(tmp_path):
    annotations = str(write(tmp_path / "rareact.csv", RAREACT))
    _, rows, vocabulary, kinds = adapt(tmp_path, "rareact", "--annotations", annotations)
    assert [(row["video"], row["start"], row["end"], row["labels"]) for row in rows] == [
        ("../videos/vidA.mp4", 10.0, 20.0, ["cut", "laptop", "cut laptop"]),  # 1, then 3 (the noun) merged
        ("../videos/vidB.mp4", 0.0, 10.0, ["microwave"]),  # 2: only the verb
        ("../videos/vidC.mp4", 30.0, 40.0, ["cut", "microwave"]),  # 4: verb and noun, not the pair
        ("../videos/vidD.mp4", 0.0, 10.0, []),  # 0: a negative clip keeps its row
    ]
    assert vocabulary == sorted(kinds) and len(vocabulary) == 9
    assert kinds["cut"] == "verb" and kinds["laptop"] == "noun" and kinds["cut laptop"] == "noun-verb"
    assert kinds["microwave"] == "noun/verb"  # a verb in "microwave phone", a noun in "cut microwave"


def test_rareact_errors(tmp_path, capsys):
    bad_class = str(
        write(tmp_path / "rareact.csv", RAREACT.replace("vidB,0,10,2,microwave,phone,2", "vidB,0,10,2,a,b,7"))
    )
    assert "line 4: annotation should be 0-4, got '7'" in failure(
        tmp_path, capsys, "rareact", "--annotations", bad_class
    )
    no_column = str(write(tmp_path / "old.csv", "id,video_id,start,end,verb,noun\n0,v,0,10,cut,laptop\n"))
    message = failure(tmp_path, capsys, "rareact", "--annotations", no_column)
    assert no_column in message and "lacks column(s) ['annotation']" in message


# --- Kinetics ----------------------------------------------------------------------------------------------------

KINETICS_400 = """label,youtube_id,time_start,time_end,split,is_cc
abseiling,--07WQ2iBlw,1,11,val,0
"passing American football (in game)",-0bt0aX_iDI,40,50,val,0
air drumming,xyzxyzxyz12,5,15,train,0
"""


def test_kinetics(tmp_path):
    annotations = str(write(tmp_path / "k400.csv", KINETICS_400))
    _, rows, vocabulary, _ = adapt(tmp_path, "kinetics", "--annotations", annotations, "--split", "val")
    assert [row["video"] for row in rows] == [
        "../videos/--07WQ2iBlw_000001_000011.mp4",
        "../videos/-0bt0aX_iDI_000040_000050.mp4",
    ]
    assert [row["labels"] for row in rows] == [["abseiling"], ["passing American football (in game)"]]
    assert "start" not in rows[0]  # trimmed clips: the file is the clip
    assert vocabulary == ["abseiling", "passing American football (in game)"]
    pattern = "{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"  # the official downloader's layout
    _, rows, _, _ = adapt(tmp_path, "kinetics", "--annotations", annotations, "--video-pattern", pattern)
    assert rows[2]["video"] == "../videos/air drumming/xyzxyzxyz12_000005_000015.mp4" and len(rows) == 3
    _, rows, _, _ = adapt(
        tmp_path, "kinetics", "--annotations", annotations, "--full-videos", "--video-pattern", "{youtube_id}.mp4"
    )
    assert (rows[0]["video"], rows[0]["start"], rows[0]["end"]) == ("../videos/--07WQ2iBlw.mp4", 1.0, 11.0)


def test_kinetics_manifest_reads_in_training(tmp_path):
    """The output is what `training.data` expects: paths resolve against the manifest, segments, vocabulary."""
    from ovmlv.training.config import ManifestConfig
    from ovmlv.training.data import manifest_vocabulary, read_manifest

    annotations = str(write(tmp_path / "k400.csv", KINETICS_400))
    summary, _, _, _ = adapt(
        tmp_path, "kinetics", "--annotations", annotations, "--full-videos", "--video-pattern", "{youtube_id}.mp4"
    )
    spec = ManifestConfig(manifest=summary["manifest"], vocabulary=summary["vocabulary"])
    records = read_manifest(spec)
    assert Path(records[0]["video"]).resolve() == (tmp_path / "videos" / "--07WQ2iBlw.mp4").resolve()
    assert (records[2]["start"], records[2]["end"], records[2]["source"]) == (5.0, 15.0, "kinetics")
    assert manifest_vocabulary(spec, records) == ["abseiling", "air drumming", "passing American football (in game)"]


def test_kinetics_errors(tmp_path, capsys):
    test_csv = str(write(tmp_path / "test.csv", "youtube_id,time_start,time_end,split\n--65_UAU7ao,0,10,test\n"))
    assert "lacks column(s) ['label']" in failure(tmp_path, capsys, "kinetics", "--annotations", test_csv)
    annotations = str(write(tmp_path / "k400.csv", KINETICS_400))
    message = failure(tmp_path, capsys, "kinetics", "--annotations", annotations, "--video-pattern", "{ytid}.mp4")
    assert "names {ytid}" in message and "'youtube_id'" in message
    bad_time = str(write(tmp_path / "bad.csv", "label,youtube_id,time_start,time_end\nabseiling,x,one,11\n"))
    assert "bad.csv, line 2: expected a number, got 'one'" in failure(
        tmp_path, capsys, "kinetics", "--annotations", bad_time
    )


def test_video_checks_and_paths(tmp_path):
    annotations = str(write(tmp_path / "k400.csv", KINETICS_400))
    write(tmp_path / "videos" / "--07WQ2iBlw_000001_000011.mp4", "")
    summary, rows, _, _ = adapt(tmp_path, "kinetics", "--annotations", annotations, "--check-videos")
    assert (summary["rows"], summary["missing_videos"]) == (3, 2)
    summary, rows, _, _ = adapt(
        tmp_path, "kinetics", "--annotations", annotations, "--drop-missing", "--absolute-paths"
    )
    assert (summary["rows"], summary["missing_videos"]) == (1, 2)
    assert rows[0]["video"] == str(tmp_path / "videos" / "--07WQ2iBlw_000001_000011.mp4")
    summary, _, _, _ = adapt(tmp_path, "kinetics", "--annotations", annotations)
    assert summary["missing_videos"] is None  # not checked unless asked


# --- Kinetics-600 zero-shot --------------------------------------------------------------------------------------

K600_TEST = """label,youtube_id,time_start,time_end,split
abseiling,aaaaaaaaaaa,0,10,test
acting in play,bbbbbbbbbbb,3,13,test
adjusting glasses,ccccccccccc,5,15,test
alligator wrestling,ddddddddddd,7,17,test
acting in play,eeeeeeeeeee,0,10,test
"""
ER_CLASSES = [{"word": word, "defn": "..."} for word in ("abseiling", "air drumming", "acting in play", "adjusting glasses", "alligator wrestling")]  # fmt: skip


def test_kinetics_zeroshot(tmp_path):
    k600 = str(write(tmp_path / "k600_test.csv", K600_TEST))
    k400 = str(write(tmp_path / "k400_classes.txt", "abseiling\nair drumming\n"))
    summary, rows, vocabulary, _ = adapt(tmp_path, "kinetics-zeroshot", "--annotations", k600, "--k400-classes", k400)
    assert vocabulary == ["acting in play", "adjusting glasses", "alligator wrestling"]
    assert len(rows) == 4 and summary["notes"] == ["3 K600 classes are not K400 classes (the protocol has 220)"]
    split = str(write(tmp_path / "tst_class_idxs.json", json.dumps([[2, 3], [3, 4], [2, 4]])))
    names = str(write(tmp_path / "classes620_label_defn.json", json.dumps(ER_CLASSES)))
    argv = ["--annotations", k600, "--k400-classes", k400, "--class-split", split, "--class-names", names]
    summary, rows, vocabulary, _ = adapt(tmp_path, "kinetics-zeroshot", *argv, "--fold", "2")
    assert vocabulary == ["adjusting glasses", "alligator wrestling"]
    assert [row["video"] for row in rows] == [
        "../videos/ccccccccccc_000005_000015.mp4",
        "../videos/ddddddddddd_000007_000017.mp4",
    ]
    assert summary["manifest"].endswith("kinetics-zeroshot_fold2.jsonl")
    text_split = str(write(tmp_path / "split.txt", "Acting_in_play\n"))  # names match ignoring case and underscores
    _, rows, vocabulary, _ = adapt(
        tmp_path, "kinetics-zeroshot", "--annotations", k600, "--k400-classes", k400, "--class-split", text_split
    )
    assert vocabulary == ["acting in play"] and len(rows) == 2


def test_kinetics_zeroshot_errors(tmp_path, capsys):
    k600 = str(write(tmp_path / "k600_test.csv", K600_TEST))
    k400 = str(write(tmp_path / "k400_classes.txt", "abseiling\nair drumming\n"))
    split = str(write(tmp_path / "tst_class_idxs.json", json.dumps([[0, 2]])))
    names = str(write(tmp_path / "classes620_label_defn.json", json.dumps(ER_CLASSES)))
    argv = ["kinetics-zeroshot", "--annotations", k600, "--k400-classes", k400, "--class-split", split]
    assert "give --class-names" in failure(tmp_path, capsys, *argv, "--fold", "1")
    message = failure(tmp_path, capsys, *argv, "--class-names", names, "--fold", "1")
    assert "1 class(es) are not K600 classes missing from K400, e.g. ['abseiling']" in message
    assert "one per fold (fold 2)" in failure(tmp_path, capsys, *argv, "--class-names", names, "--fold", "2")


# --- YouTube-8M: TFRecords written byte by byte --------------------------------------------------------------------


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


def field(number: int, payload: bytes | int) -> bytes:
    """A length-delimited field, or a varint one for an int."""
    if isinstance(payload, int):
        return varint(number << 3) + varint(payload)
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def feature(values: list, packed: bool = True) -> bytes:
    if isinstance(values[0], bytes):
        return field(1, b"".join(field(1, value) for value in values))
    if isinstance(values[0], float):
        return field(2, field(1, struct.pack(f"<{len(values)}f", *values)))
    if packed:
        return field(3, field(1, b"".join(varint(value) for value in values)))
    return field(3, b"".join(field(1, value) for value in values))


def features(mapping: dict[str, bytes]) -> bytes:
    return b"".join(field(1, field(1, key.encode()) + field(2, value)) for key, value in mapping.items())


def write_tfrecord(path: Path, records: list[bytes]) -> Path:
    with path.open("wb") as file:
        for record in records:
            length = struct.pack("<Q", len(record))
            file.write(length + struct.pack("<I", masked_crc32c(length)) + record)
            file.write(struct.pack("<I", masked_crc32c(record)))
    return path


VOCABULARY_CSV = """Index,TrainVideoCount,KnowledgeGraphId,Name,WikiUrl,Vertical1,Vertical2,Vertical3,WikiDescription
0,378135,/m/03bt1gh,Game,https://en.wikipedia.org/wiki/Game,Games,,,"A game is structured play, usually"
1,306476,/m/01mw1,Video game,https://en.wikipedia.org/wiki/Video_game,Games,,,A video game is an electronic game
2,200000,/m/0k4j,Car,https://en.wikipedia.org/wiki/Car,Autos & Vehicles,,,A car is a wheeled vehicle
3,10,/m/0xyz,,,,,,
"""


def test_crc32c():
    assert crc32c(b"123456789") == 0xE3069283  # the standard CRC-32C check value


def test_youtube8m_video_level(tmp_path):
    vocabulary_csv = str(write(tmp_path / "vocabulary.csv", VOCABULARY_CSV))
    shards = tmp_path / "video"
    shards.mkdir()
    mean_rgb = feature([0.25, -0.5, 1.0])
    write_tfrecord(
        shards / "train00.tfrecord",
        [
            field(1, features({"id": feature([b"AbCd"]), "labels": feature([0, 2]), "mean_rgb": mean_rgb})),
            field(1, features({"mean_rgb": mean_rgb, "labels": feature([2], packed=False), "id": feature([b"XyZw"])})),
        ],
    )
    argv = ["youtube8m", "--annotations", str(shards), "--vocabulary-csv", vocabulary_csv]
    _, rows, vocabulary, kinds = adapt(tmp_path, *argv)
    assert [(row["video"], row["labels"]) for row in rows] == [
        ("../videos/AbCd.mp4", ["Game", "Car"]),
        ("../videos/XyZw.mp4", ["Car"]),
    ]
    assert vocabulary == ["Game", "Video game", "Car"]  # every named class, by index
    assert kinds == {"Game": "Games", "Video game": "Games", "Car": "Autos & Vehicles"}


def test_youtube8m_curation_drops_a_vertical_and_keeps_the_most_frequent(tmp_path):
    """The paper's 2429 training classes: game titles out (the Games vertical), then the most frequent classes;
    a video whose every label is curated away is left out rather than kept as an all-negative example."""
    vocabulary_csv = str(
        write(tmp_path / "vocabulary.csv", VOCABULARY_CSV + "4,500000,/m/0b,Dog,,Pets & Animals,,,\n")
    )
    shard = write_tfrecord(
        tmp_path / "train00.tfrecord",
        [
            field(1, features({"id": feature([b"AbCd"]), "labels": feature([0, 2, 4])})),
            field(1, features({"id": feature([b"Game"]), "labels": feature([1])})),
            field(1, features({"id": feature([b"Cars"]), "labels": feature([2])})),
        ],
    )
    argv = ["youtube8m", "--annotations", str(shard), "--vocabulary-csv", vocabulary_csv, "--drop-vertical", "Games"]
    summary, rows, vocabulary, _ = adapt(tmp_path, *argv, "--max-labels", "1")
    assert vocabulary == ["Dog"]  # Car (200000) and Dog (500000) remain after Games; the most frequent one is kept
    assert [(row["video"], row["labels"]) for row in rows] == [("../videos/AbCd.mp4", ["Dog"])]
    assert "2 rows whose every label was curated away left out" in summary["notes"]
    _, rows, vocabulary, _ = adapt(tmp_path, *argv)
    assert vocabulary == ["Car", "Dog"] and [row["labels"] for row in rows] == [["Car", "Dog"], ["Car"]]


def test_youtube8m_segments(tmp_path):
    vocabulary_csv = str(write(tmp_path / "vocabulary.csv", VOCABULARY_CSV))
    context = {
        "id": feature([b"Seg1"]),
        "labels": feature([0, 2]),
        "segment_start_times": feature([10, 10, 35]),
        "segment_labels": feature([0, 2, 0]),
        "segment_scores": feature([1.0, 0.0, 0.0]),
    }
    frames = field(1, field(1, b"rgb") + field(2, b"".join(field(1, feature([bytes(8)])) for _ in range(40))))
    shard = write_tfrecord(tmp_path / "validate00.tfrecord", [field(1, features(context)) + field(2, frames)])
    argv = ["youtube8m", "--annotations", str(shard), "--vocabulary-csv", vocabulary_csv, "--segments"]
    _, rows, vocabulary, kinds = adapt(tmp_path, *argv)
    assert [(row["start"], row["end"], row["labels"]) for row in rows] == [(10.0, 15.0, ["Game"]), (35.0, 40.0, [])]
    assert vocabulary == ["Game", "Car"]  # the rated classes
    assert kinds == {"Game": "Games", "Car": "Autos & Vehicles"}


def test_youtube8m_errors(tmp_path, capsys):
    vocabulary_csv = str(write(tmp_path / "vocabulary.csv", VOCABULARY_CSV))
    record = field(1, features({"id": feature([b"AbCd"]), "labels": feature([1, 3])}))
    shard = write_tfrecord(tmp_path / "train00.tfrecord", [record])
    argv = ["youtube8m", "--annotations", str(shard), "--vocabulary-csv", vocabulary_csv]
    message = failure(tmp_path, capsys, *argv)
    assert f"{shard}, record 0: label(s) [3] have no Name" in message
    assert "segment-rated" in failure(tmp_path, capsys, *argv, "--segments")
    data = bytearray(shard.read_bytes())
    data[9] ^= 0xFF  # the length's checksum
    shard.write_bytes(bytes(data))
    assert "bad length checksum at byte 0" in failure(tmp_path, capsys, *argv)
    data[9] ^= 0xFF
    data[14] ^= 0x01  # a bit of the payload: the record would still parse, with another label
    shard.write_bytes(bytes(data))
    assert "bad payload checksum in the record at byte 0" in failure(tmp_path, capsys, *argv)
    data[14] ^= 0x01
    shard.write_bytes(bytes(data[:20]))
    assert "record at byte 0 is truncated" in failure(tmp_path, capsys, *argv)


# --- UCF101 and HMDB51 -------------------------------------------------------------------------------------------


def ucf_lists(tmp_path: Path) -> str:
    folder = tmp_path / "ucfTrainTestlist"
    write(folder / "classInd.txt", "1 ApplyEyeMakeup\r\n2 HandstandPushups\r\n3 YoYo\r\n")
    write(folder / "trainlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\nYoYo/v_YoYo_g08_c01.avi 3\r\n")
    write(folder / "testlist01.txt", "HandstandPushups/v_HandStandPushups_g01_c01.avi\r\n")
    return str(folder)


def test_ucf101(tmp_path):
    folder = ucf_lists(tmp_path)
    _, rows, vocabulary, _ = adapt(tmp_path, "ucf101", "--annotations", folder, "--split", "train", "--fold", "1")
    assert [row["labels"] for row in rows] == [["apply eye makeup"], ["yo yo"]]
    assert rows[0]["video"] == "../videos/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi"
    assert vocabulary == ["apply eye makeup", "handstand pushups", "yo yo"]
    summary, rows, _, _ = adapt(tmp_path, "ucf101", "--annotations", folder, "--split", "test", "--fold", "1")
    assert [row["labels"] for row in rows] == [["handstand pushups"]]
    assert summary["manifest"].endswith("ucf101_test_fold1.jsonl")


def test_ucf101_errors(tmp_path, capsys):
    folder = ucf_lists(tmp_path)
    write(Path(folder) / "trainlist02.txt", "YoYo/v_YoYo_g08_c01.avi 1\n")
    message = failure(tmp_path, capsys, "ucf101", "--annotations", folder, "--split", "train", "--fold", "2")
    assert "trainlist02.txt, line 1: class index '1' does not name folder 'YoYo'" in message
    message = failure(tmp_path, capsys, "ucf101", "--annotations", folder, "--split", "test", "--fold", "3")
    assert "not found" in message and "testlist03.txt" in message


def hmdb_splits(tmp_path: Path) -> str:
    folder = tmp_path / "testTrainMulti_7030_splits"
    video = "April_09_brush_hair_u_nm_np1_ba_goo_{}.avi {} "  # the official files end lines with a space
    write(folder / "brush_hair_test_split1.txt", "\n".join(video.format(i, s) for i, s in enumerate("120")) + "\n")
    write(folder / "brush_hair_test_split2.txt", "\n".join(video.format(i, s) for i, s in enumerate("210")) + "\n")
    write(folder / "ride_bike_test_split1.txt", "Bike_ride_0.avi 2 \nBike_ride_1.avi 1 \n")
    return str(folder)


def test_hmdb51(tmp_path):
    folder = hmdb_splits(tmp_path)
    _, rows, vocabulary, _ = adapt(tmp_path, "hmdb51", "--annotations", folder, "--split", "test", "--fold", "1")
    assert [(row["video"], row["labels"]) for row in rows] == [
        ("../videos/brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_1.avi", ["brush hair"]),
        ("../videos/ride_bike/Bike_ride_0.avi", ["ride bike"]),
    ]
    assert vocabulary == ["brush hair", "ride bike"]
    _, rows, vocabulary, _ = adapt(tmp_path, "hmdb51", "--annotations", folder, "--split", "train", "--fold", "2")
    assert [row["video"] for row in rows] == ["../videos/brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_1.avi"]
    assert vocabulary == ["brush hair"]  # only brush_hair has a fold-2 file here


def test_hmdb51_errors(tmp_path, capsys):
    folder = hmdb_splits(tmp_path)
    write(Path(folder) / "ride_bike_test_split3.txt", "Bike_ride_0.avi 5\n")
    message = failure(tmp_path, capsys, "hmdb51", "--annotations", folder, "--split", "test", "--fold", "3")
    assert "ride_bike_test_split3.txt, line 1: expected '<video>.avi 0|1|2'" in message
    assert "No HMDB51 split files" in failure(
        tmp_path, capsys, "hmdb51", "--annotations", str(tmp_path), "--split", "test", "--fold", "1"
    )
