/**
 * escape: escapeHtml makes any text safe inside HTML text and inside a
 * double- or single-quoted attribute. Everything the status page shows that
 * came from a report (peer URLs, group names, error texts) goes through it:
 * a peer's answer is data, never markup.
 */

const ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** escapeHtml replaces the five characters that could end a text or an attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] as string)
}
