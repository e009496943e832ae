#!/usr/bin/env bash
# Test pipeline whose behaviour is chosen by the report's "mode" field.
# CONTROL (service environment) is a host dir outside /tmp the test uses to steer it.
set -uo pipefail
BASE="${LOMI_BASE_DIR:?}"
USER_OUT="${LOMI_USER_DIR:?}"
RID="${OMICSFLOW_REPORT_ID:?}"
mode=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("mode","ok"))' "$BASE/report.json")
echo "behave: report=$RID run=${OMICSFLOW_RUN_ID:-?} attempt=${OMICSFLOW_ATTEMPT:-?} mode=$mode"
case "$mode" in
  ok)
    mkdir -p "$USER_OUT/out"; echo "result for $RID" > "$USER_OUT/out/result.txt"; exit 0 ;;
  user_fail)
    echo "ERROR: input file $BASE/reads_R1.fastq.gz: No such file or directory" >&2; exit 2 ;;
  system_fail)
    echo "write error: /data/work/tmp.bam: No space left on device" >&2; exit 1 ;;
  temp_then_ok)
    if [[ -e "$CONTROL/$RID.ready" ]]; then echo "inputs arrived"; exit 0; fi
    echo "inputs not uploaded yet"; exit 75 ;;
  block)
    # A child that must die with the run: its unique argv lets the test find it on the host.
    bash -c "exec -a omicsflow-test-child-$RID sleep 600" &
    echo "started child"
    while [[ ! -e "$CONTROL/$RID.release" ]]; do sleep 0.2; done
    echo "released"; exit 0 ;;
  block_then_fail)
    echo "started; waiting for release"
    while [[ ! -e "$CONTROL/$RID.release" ]]; do sleep 0.2; done
    echo "ERROR: input file $BASE/sample.bam: No such file or directory" >&2; exit 2 ;;
  ambiguous_fail)
    # Nothing any rule recognises: the deterministic classifier answers "ambiguous".
    echo "frobnicator: quux state 0x7f unexpected in stage 3" >&2; exit 1 ;;
  *)
    echo "unknown mode $mode" >&2; exit 3 ;;
esac
