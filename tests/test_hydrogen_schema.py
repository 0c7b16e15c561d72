"""Hydrogen kits that neuraldrum writes pass Hydrogen's own schema (drumkit.xsd of Hydrogen 1.2, from Debian's
hydrogen-data package, fetched by scripts/setup.sh into .hydrogen-xsd/ without installing the package). The test
fails, not skips, when the schema is missing: run ./scripts/setup.sh."""
from pathlib import Path

import pytest

from neuraldrum.export.hydrogen import drumkit_xml
from neuraldrum.export.kits import write_kit_formats
from neuraldrum.kit import new_kit

XSD = Path(__file__).resolve().parents[1] / ".hydrogen-xsd" / "drumkit.xsd"


@pytest.fixture(scope="module")
def schema():
    from lxml import etree
    assert XSD.is_file(), f"{XSD} is missing: run ./scripts/setup.sh (it fetches Hydrogen's drumkit.xsd)"
    return etree.XMLSchema(etree.parse(str(XSD)))


def check(schema, text: str) -> None:
    from lxml import etree

    doc = etree.fromstring(text.encode())
    assert schema.validate(doc), "\n".join(str(e) for e in schema.error_log)


def test_a_written_kit_validates_against_hydrogens_schema(schema, engine, tmp_path):
    out = write_kit_formats(engine, new_kit(engine, 3), tmp_path / "kit", ["wav", "hydrogen"])
    check(schema, (Path(out) / "drumkit.xml").read_text(encoding="utf-8"))


def test_every_slot_shape_validates(schema):
    slots = [("kick", "kick", "kick.wav", 36), ("Kick 2", "kick", "Kick 2.wav", None),
             ("hh_closed", "hh_closed", "hh_closed.wav", 42), ("hh_open", "hh_open", "hh_open.wav", 46),
             ("odd & <name>", "snare", "odd.wav", None)]
    check(schema, drumkit_xml(slots, name="a <kit> & more", info="", author="", license_="CC0"))
