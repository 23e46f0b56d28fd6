/**
 * Rewrites CUDA's launch syntax, `kernel<<<grid, block, shared, stream>>>(args)`, into a host call,
 * `::emu::launch([&]() { kernel(args); }, grid, block, shared, stream)`, so that a kernel file compiles with a
 * host C++ compiler against the CPU emulator (test/native/cuda_emu). Nothing else in the source changes.
 * The kernel expression is the identifier (with `::` and template arguments) right before `<<<`; the launch
 * configuration ends at the first `>>>` outside parentheses; the arguments are the balanced parentheses
 * that follow. Comments and string literals are not parsed, so a `<<<` inside one is rewritten too (the
 * kernel files have none). Throws on a launch it cannot take apart.
 */
export const rewriteLaunches = (source: string): string => {
  let out = ""
  let from = 0
  for (;;) {
    const open = source.indexOf("<<<", from)
    if (open < 0) return out + source.slice(from)
    // The kernel expression: scan back over identifiers, `::` and balanced template brackets.
    let start = open
    let depth = 0
    while (start > from) {
      const c = source[start - 1]!
      if (c === ">") depth += 1
      else if (c === "<") {
        if (depth === 0) break
        depth -= 1
      } else if (!/[\w:]/.test(c) && !(depth > 0 && /[\s,*&]/.test(c))) break
      start -= 1
    }
    const kernel = source.slice(start, open).trim()
    if (depth !== 0 || !/^[A-Za-z_:]/.test(kernel)) throw new Error(`cannot find the kernel of the launch at offset ${open}`)
    // The configuration, up to `>>>` at parenthesis depth 0.
    let i = open + 3
    let parens = 0
    for (; i < source.length; i += 1) {
      const c = source[i]!
      if (c === "(" || c === "[" || c === "{") parens += 1
      else if (c === ")" || c === "]" || c === "}") parens -= 1
      else if (parens === 0 && source.startsWith(">>>", i)) break
    }
    if (i >= source.length) throw new Error(`unterminated launch configuration at offset ${open}`)
    const config = source.slice(open + 3, i).trim()
    // The arguments: balanced parentheses after optional whitespace.
    let j = i + 3
    while (j < source.length && /\s/.test(source[j]!)) j += 1
    if (source[j] !== "(") throw new Error(`launch at offset ${open} has no argument list`)
    const argsStart = j
    parens = 0
    for (; j < source.length; j += 1) {
      const c = source[j]!
      if (c === "(") parens += 1
      else if (c === ")") {
        parens -= 1
        if (parens === 0) break
      }
    }
    if (j >= source.length) throw new Error(`unbalanced launch arguments at offset ${open}`)
    const args = source.slice(argsStart, j + 1)
    if (config.split(",").length < 2) throw new Error(`launch at offset ${open} has no block size`)
    out += source.slice(from, start) + `::emu::launch([&]() { ${kernel}${args}; }, ${config})`
    from = j + 1
  }
}

/**
 * Rewrites the declarations of a kernel's dynamic shared memory, `extern __shared__ [__align__(n)] T name[];`,
 * into `T* const name = static_cast<T*>(::emu::dynamicShared());`: the emulator hands every block of a launch a
 * fresh buffer of the launch's size (see test/native/cuda_emu). Throws on an `extern __shared__` it cannot
 * take apart.
 */
export const rewriteDynamicShared = (source: string): string =>
  source.replace(/extern[ \t]+__shared__\b[^;\n]*;/g, (declaration) => {
    const parts = /^extern\s+__shared__\s+(?:__align__\(\s*\d+\s*\)\s+)?([A-Za-z_][\w:]*(?:\s+[A-Za-z_][\w:]*)*)\s+([A-Za-z_]\w*)\s*\[\s*\]\s*;$/.exec(declaration)
    if (parts === null) throw new Error(`cannot rewrite the dynamic shared memory declaration "${declaration}"`)
    return `${parts[1]}* const ${parts[2]} = static_cast<${parts[1]}*>(::emu::dynamicShared());`
  })
