"""SQLAlchemy 2 ORM models of the store's index (``Mapped`` / ``mapped_column``).

One flat ``instance`` table rather than patient/study/series/instance tables: every lookup the
transactions make (``get_many``, ``series``, ``study``) is one indexed query without joins, and a
put is one ``INSERT`` that needs no get-or-create of parent rows (which would race between
concurrent writers).  Study and series attributes are repeated per instance; they are short
strings, and the index stays small next to the files it describes.

``schema_info`` records the schema version so that a later xdsi can migrate an index and an
earlier one refuses to open a newer index (see :data:`SCHEMA_VERSION`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION: Final = 1
"""Version of the tables below.  Bump it, and add a migration step, for every schema change."""

UID_LENGTH: Final = 64  # PS3.5 §9.1


class Base(DeclarativeBase):
    pass


class SchemaInfo(Base):
    """One row: the schema version the index was created (or last migrated) with."""

    __tablename__ = "schema_info"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Instance(Base):
    """One stored SOP instance: what retrieval needs without opening the file (PS3.3 C.7, C.12).

    Attribute names follow the DICOM keywords they come from.  ``rel_path`` is relative to the
    store's ``files/`` directory, so a data directory can be moved as a whole.
    """

    __tablename__ = "instance"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(UID_LENGTH), unique=True)
    sop_class_uid: Mapped[str] = mapped_column(String(UID_LENGTH))
    transfer_syntax_uid: Mapped[str] = mapped_column(String(UID_LENGTH))
    study_instance_uid: Mapped[str] = mapped_column(String(UID_LENGTH))
    series_instance_uid: Mapped[str] = mapped_column(String(UID_LENGTH))

    patient_id: Mapped[str] = mapped_column(Text, default="")
    patient_name: Mapped[str] = mapped_column(Text, default="")
    modality: Mapped[str] = mapped_column(String(16), default="")
    series_number: Mapped[int | None] = mapped_column(Integer)
    instance_number: Mapped[int | None] = mapped_column(Integer)
    number_of_frames: Mapped[int] = mapped_column(Integer, default=1)

    study_date: Mapped[str] = mapped_column(String(8), default="")
    study_time: Mapped[str] = mapped_column(String(16), default="")
    accession_number: Mapped[str] = mapped_column(Text, default="")
    study_id: Mapped[str] = mapped_column(Text, default="")
    study_description: Mapped[str] = mapped_column(Text, default="")
    series_description: Mapped[str] = mapped_column(Text, default="")

    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    rel_path: Mapped[str] = mapped_column(Text)
    stored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        # The unique constraint on sop_instance_uid is the SOP UID index; these serve the
        # series and study listings, in the order the protocol returns them.
        Index("ix_instance_study_series", "study_instance_uid", "series_instance_uid"),
        Index("ix_instance_series", "series_instance_uid"),
    )
