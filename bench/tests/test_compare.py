"""Tests of bench/compare.py with fake Gradflow and reference programs (standard library only)."""
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCH))
import compare  # noqa: E402


def write_exe(path: Path, body: str) -> Path:
    path.write_text(body)
    path.chmod(0o755)
    return path


class ParseResultTests(unittest.TestCase):
    def test_takes_last_json_line_with_tokens_per_second(self):
        out = textwrap.dedent("""\
            warming up...
            {"note": "not a result"}
            {"preset": "S", "tokens_per_second": 12345.5, "ms_per_step": 82.9}
            done
        """)
        res = compare.parse_result(out, "gradflow")
        self.assertEqual(res["tokens_per_second"], 12345.5)
        self.assertEqual(res["preset"], "S")

    def test_rejects_output_without_result(self):
        with self.assertRaisesRegex(ValueError, "gradflow: no JSON line"):
            compare.parse_result("hello\n{broken json\n", "gradflow")

    def test_rejects_non_positive_throughput(self):
        with self.assertRaisesRegex(ValueError, "expected > 0"):
            compare.parse_result('{"tokens_per_second": 0}', "pytorch")

    def test_rejects_non_numeric_throughput(self):
        with self.assertRaises(ValueError):
            compare.parse_result('{"tokens_per_second": "fast"}', "pytorch")


class QuietTests(unittest.TestCase):
    def test_busy_cores_is_within_machine(self):
        busy = compare.busy_cores(0.2)
        self.assertIsNotNone(busy)
        self.assertGreaterEqual(busy, 0.0)
        self.assertLessEqual(busy, os.cpu_count() + 1e-9)

    def test_wait_gives_up_after_max_wait(self):
        start = compare.time.monotonic()
        compare.wait_until_quiet(-1.0, 0.0)  # never quiet: returns after one reading
        self.assertLess(compare.time.monotonic() - start, 5.0)


class EndToEndTests(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp())
        # The fake reference echoes its arguments so the test can see what it was given.
        self.reference = write_exe(self.dir / "fake_reference.py", textwrap.dedent("""\
            import json, sys
            a = sys.argv[1:]
            preset = a[a.index("--preset") + 1]
            print("some log line")
            print(json.dumps({"preset": preset, "tokens_per_second": 1000.0 if preset == "S" else 100.0,
                              "ms_per_step": 1.0, "impl": "pytorch", "argv": a}))
        """))

    def run_compare(self, *extra, env=None):
        cmd = [sys.executable, str(BENCH / "compare.py"), "--python", sys.executable,
               "--reference", str(self.reference), "--rounds", "2", *extra]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                              env={**os.environ, **(env or {})})

    def test_missing_binary_still_runs_reference(self):
        proc = self.run_compare("--gradflow", str(self.dir / "nope"), "--presets", "S")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("Gradflow binary not found", proc.stderr)
        self.assertIn("| S | — (binary missing) | 1,000 | — |", proc.stdout)

    def test_fake_gradflow_from_environment_gives_ratio(self):
        fake = write_exe(self.dir / "gradflow", textwrap.dedent("""\
            #!/bin/sh
            echo "gradflow bench $*" >&2
            case "$*" in
              "bench --preset S --steps 30 --warmup 5 --threads 2 --json") echo '{"preset":"S","tokens_per_second":1500,"ms_per_step":0.7}' ;;
              "bench --preset M --steps 10 --warmup 3 --threads 2 --json") echo '{"preset":"M","tokens_per_second":50,"ms_per_step":20}' ;;
              *) echo "unexpected arguments: $*" >&2; exit 3 ;;
            esac
        """))
        proc = self.run_compare("--json", env={"GRADFLOW": str(fake)})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("| S | 1,500 | 1,000 | 1.50 |", proc.stdout)
        self.assertIn("| M | 50 | 100 | 0.50 |", proc.stdout)
        last = proc.stdout.strip().splitlines()[-1]
        data = compare.json.loads(last)
        self.assertEqual(data["results"]["S"]["gradflow"]["rounds"], [1500.0, 1500.0])
        self.assertEqual(data["results"]["M"]["pytorch"]["last"]["argv"],
                         ["bench", "--preset", "M", "--steps", "10", "--warmup", "3", "--threads", "2", "--json"])

    def test_failing_gradflow_is_reported_and_reference_still_runs(self):
        fake = write_exe(self.dir / "gradflow", "#!/bin/sh\necho 'Error: unknown subcommand bench' >&2\nexit 64\n")
        proc = self.run_compare("--gradflow", str(fake), "--presets", "S")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("gradflow: exit status 64", proc.stderr)
        self.assertIn("unknown subcommand bench", proc.stdout)
        self.assertIn("| 1,000 |", proc.stdout)

    def test_rejects_unknown_preset(self):
        proc = self.run_compare("--presets", "S,XL")
        self.assertEqual(proc.returncode, 2)
        self.assertIn("--presets 'S,XL'", proc.stderr)


if __name__ == "__main__":
    unittest.main()
