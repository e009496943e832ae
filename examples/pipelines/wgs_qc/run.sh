#!/usr/bin/env bash
# Demo QC pipeline: reads the report, writes a QC summary into the report's user-data dir.
# Fields: sample (default: the report id); fail=user makes it fail like a bad input would.
set -euo pipefail
BASE_DIR="${LOMI_BASE_DIR:?}"
USER_DIR="${LOMI_USER_DIR:?}"
report_id="${OMICSFLOW_REPORT_ID:-unknown}"
echo "wgs-qc: report ${report_id}, attempt ${OMICSFLOW_ATTEMPT:-?}"
mode=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("fail",""))' "$BASE_DIR/report.json")
if [[ "$mode" == "user" ]]; then
  echo "ERROR: input file $BASE_DIR/reads_R1.fastq.gz: No such file or directory" >&2
  exit 2
fi
mkdir -p output "$USER_DIR/qc"
echo "<html>debug for ${report_id}</html>" > output/debug.html
reads=$(( (RANDOM % 1000) + 1000 ))
printf '{"report_id": "%s", "reads_million": %d, "q30": 0.93}\n' "$report_id" "$reads" > "$USER_DIR/qc/summary.json"
echo "wgs-qc: done"
