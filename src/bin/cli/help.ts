/**
 * `qmp --help` and `qmp COMMAND --help`: `@effect/cli`'s description of the command's arguments and
 * options, without what it adds to every one of them ("A user-defined piece of text.", "This setting
 * is optional.", ...: the usage line shows what is optional and repeatable), under a usage line that
 * reads `qmp exec ...`, and followed by examples.
 *
 * @since 0.1.0
 */
import type * as CliConfig from "@effect/cli/CliConfig"
import * as CliCommand from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Span from "@effect/cli/HelpDoc/Span"
import * as Usage from "@effect/cli/Usage"

/**
 * Examples of a command: each a command line and what it does.
 *
 * @since 0.1.0
 * @category models
 */
export type Examples = ReadonlyArray<readonly [commandLine: string, what: string]>

/**
 * A command as help shows it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Entry {
  /** The words after `qmp`: `["job", "run"]`. */
  readonly path: ReadonlyArray<string>
  readonly command: CliCommand.Command<any, any, any, any>
  /** What it does, in a sentence or three: the same text as the command's own description. */
  readonly description: string
  readonly examples: Examples
}

/** What `@effect/cli` says of every option and argument of a kind, whatever the command. */
const boilerplate: ReadonlyArray<RegExp> = [
  /^A user-defined piece of text\.$/,
  /^A true or false value\.$/,
  /^An integer\.$/,
  /^A floating point number\.$/,
  /^One of the following: /,
  /^This setting is optional\.$/,
  /^This (option|argument|setting) may be repeated /,
  /^This setting is a property argument/,
  /^This (option|setting) can be set from /
]

const textOf = (span: Span.Span): string => {
  switch (span._tag) {
    case "Text":
    case "URI":
      return span.value
    case "Highlight":
    case "Weak":
    case "Strong":
      return textOf(span.value)
    case "Sequence":
      return textOf(span.left) + textOf(span.right)
  }
}

/** The help without the boilerplate paragraphs. */
const clean = (doc: HelpDoc.HelpDoc): HelpDoc.HelpDoc => {
  switch (doc._tag) {
    case "Paragraph":
      return boilerplate.some((pattern) => pattern.test(textOf(doc.value).trim())) ? HelpDoc.empty : doc
    case "Sequence": {
      const left = clean(doc.left)
      const right = clean(doc.right)
      if (HelpDoc.isEmpty(left)) return right
      return HelpDoc.isEmpty(right) ? left : HelpDoc.sequence(left, right)
    }
    case "DescriptionList": {
      const [first, ...rest] = doc.definitions.map(([span, body]) =>
        [span, clean(body)] as [Span.Span, HelpDoc.HelpDoc]
      )
      return HelpDoc.descriptionList([first, ...rest])
    }
    case "Enumeration":
      return HelpDoc.enumeration(doc.elements.map(clean) as [HelpDoc.HelpDoc, ...Array<HelpDoc.HelpDoc>])
    default:
      return doc
  }
}

const examplesOf = (entry: Entry, program: string): Array<HelpDoc.HelpDoc> =>
  entry.examples.length === 0 ? [] : [
    HelpDoc.h1("EXAMPLES"),
    ...entry.examples.map(([line, what]) =>
      HelpDoc.descriptionList([[Span.text(`$ ${line.replace(/^qmp\b/, program)}`), HelpDoc.p(what)]])
    )
  ]

/**
 * The help of one command, for `program` (`qmp`, or `npx qmp` in a clone). A command with
 * subcommands (`qmp`, `qmp job`) lists them with their descriptions, for `--help` on each to say
 * the rest; any other shows its arguments and options.
 *
 * @since 0.1.0
 * @category rendering
 */
export const render = (
  entry: Entry,
  subcommands: ReadonlyArray<Entry>,
  program: string,
  config: CliConfig.CliConfig
): HelpDoc.HelpDoc => {
  const words = [program, ...entry.path].join(" ")
  if (subcommands.length > 0) {
    const [first, ...rest] = subcommands.map((sub): [Span.Span, HelpDoc.HelpDoc] => [
      Span.text(sub.path.at(-1)!),
      HelpDoc.p(sub.description)
    ])
    return HelpDoc.blocks([
      HelpDoc.h1("USAGE"),
      HelpDoc.p(`$ ${words} COMMAND ...`),
      HelpDoc.h1("DESCRIPTION"),
      HelpDoc.p(entry.description),
      HelpDoc.h1("COMMANDS"),
      HelpDoc.descriptionList([first, ...rest]),
      ...examplesOf(entry, program),
      HelpDoc.p(`${words} COMMAND --help tells more of each.`)
    ])
  }
  // The command's usage starts with its own name: the words before it are its parents'.
  const parents = [program, ...entry.path.slice(0, -1)].join(" ")
  const usages = Usage.enumerate(CliCommand.getUsage(entry.command), config).map((span) =>
    HelpDoc.p(Span.concat(Span.text(`$ ${parents} `), span))
  )
  return HelpDoc.blocks([
    HelpDoc.h1("USAGE"),
    ...usages,
    clean(CliCommand.getHelp(entry.command, config)),
    ...examplesOf(entry, program)
  ])
}
