/** One-line descriptions of Schema decode failures: "field.path: message; ...". */
import { ParseResult } from "effect"

export const describeParseError = (error: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    // An optional field with a wrong value also fails its "or undefined" branch; that half says nothing.
    .filter((issue) => !issue.message.startsWith("Expected undefined"))
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") + ": " : ""}${issue.message}`)
    .join("; ")
