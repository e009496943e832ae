#!/usr/bin/env bash
# Demo variant calling: exits 75 (temp fail: inputs not there yet) until reads.fastq exists
# in the report's base dir, then "calls" variants.
set -euo pipefail
BASE_DIR="${LOMI_BASE_DIR:?}"
USER_DIR="${LOMI_USER_DIR:?}"
if [[ ! -s "$BASE_DIR/reads.fastq" ]]; then
  echo "variant-calling: $BASE_DIR/reads.fastq not uploaded yet; will retry later"
  exit 75
fi
mkdir -p "$USER_DIR/vcf"
lines=$(wc -l < "$BASE_DIR/reads.fastq")
echo "##fileformat=VCFv4.2 (from ${lines} fastq lines)" > "$USER_DIR/vcf/calls.vcf"
echo "variant-calling: done"
