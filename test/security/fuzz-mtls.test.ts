// The REST fuzzing (test/adapters/http/fuzz.test.ts) with mTLS on: every generated request goes
// over HTTPS with a client certificate, through authentication, authorization and the audit
// trail; still never a 5xx, always as documented, a refusal changes nothing but its one audit
// record, and every request leaves exactly one.
process.env.BATON_FUZZ_MTLS = '1';
await import('../adapters/http/fuzz.test.js');
