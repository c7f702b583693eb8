/** Whether a model answers: true, false, or undefined while the status loads. */
export type ModelState = { enabled: boolean | undefined; model: string | null };

const NO_MODEL =
  'No language model is configured: an administrator sets OPENAI_API_KEY (and OPENAI_BASE_URL for a self-hosted model).';

/** Says that no model is configured, in place of the composer. */
export function NoModelNotice() {
  return (
    <p className="alert alert-warn" role="note">
      {NO_MODEL}
    </p>
  );
}
