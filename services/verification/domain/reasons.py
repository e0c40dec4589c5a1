"""Correction reasons officers send most often, offered as ready-made choices in the console.

They are sent to the citizen as written, so each one says what is wrong and what to send
instead, in plain Bahasa Indonesia. Officers can always add a reason of their own.
"""

from __future__ import annotations

from typing import Final

CANNED_REASONS: Final[tuple[str, ...]] = (
    "Foto KK tidak terbaca, kirim ulang foto yang jelas",
    "Foto KTP-el tidak terbaca, kirim ulang foto yang jelas",
    "Lampirkan KTP-el kedua orang tua",
    "Nama pada permohonan berbeda dengan KK, kirim ulang permohonan dengan nama sesuai KK",
    "NIK pada permohonan berbeda dengan KK, periksa kembali NIK Anda",
    "Lampirkan surat keterangan hilang dari kepolisian",
    "Lampirkan akta kelahiran anak",
    "Berkas yang dikirim bukan dokumen yang diminta, kirim dokumen persyaratan yang benar",
)
