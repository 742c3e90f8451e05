// Runs Python code (stdin) in Pyodide under Deno. Deno is started with read access to the Pyodide
// folder only: no network, no environment, no writes, no subprocesses. Prints one JSON line.
const [pyodideDir, capArg] = Deno.args;
const cap = Number(capArg) || 65536;
const code = await new Response(Deno.stdin.readable).text();
let out = "";
let truncated = false;
const write = (s) => {
  const line = s + "\n";
  if (out.length + line.length > cap) {
    truncated = true;
    out += line.slice(0, Math.max(0, cap - out.length));
  } else out += line;
};
const { loadPyodide } = await import(`${pyodideDir}/pyodide.mjs`);
const py = await loadPyodide({ indexURL: `${pyodideDir}/`, stdout: write, stderr: write });
let ok = true;
let error = "";
try {
  await py.runPythonAsync(code);
} catch (e) {
  ok = false;
  error = String(e && e.message ? e.message : e);
}
console.log(JSON.stringify({ ok, out: out.slice(0, cap), truncated, error: error.slice(-4000) }));
