/// The console's style sheet.
enum ConsoleStyle {
    static let css = #"""
    :root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --accent: #5b3fd1; --ok: #12805c; --bad: #b42318; --warn: #b54708; }
    * { box-sizing: border-box; }
    body { margin: 0; font: 14px/1.45 "DejaVu Sans", system-ui, sans-serif; color: var(--fg); background: #f7f8fa; }
    header { display: flex; align-items: center; gap: 24px; padding: 10px 24px; background: #221a4d; color: #fff; }
    header .brand { font-weight: bold; font-size: 17px; }
    nav { display: flex; flex: 1; align-items: center; gap: 18px; }
    nav[hidden] { display: none; }
    nav a { color: #d9d2ff; text-decoration: none; }
    nav a.current { color: #fff; border-bottom: 2px solid #fff; }
    nav .spacer { flex: 1; }
    main { padding: 20px 24px; max-width: 1280px; }
    h1 { font-size: 20px; margin: 0 0 14px; }
    h2 { font-size: 16px; margin: 22px 0 8px; }
    section.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 18px; margin-bottom: 16px; }
    table { border-collapse: collapse; width: 100%; background: #fff; }
    th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
    th { color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase; }
    td.mono, span.mono { font-family: "DejaVu Sans Mono", monospace; font-size: 12px; word-break: break-all; }
    .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; background: #eef0f4; }
    .badge.active, .badge.SUCCESS, .badge.Succeeded { background: #dcfae6; color: var(--ok); }
    .badge.inactive, .badge.FAILURE, .badge.Failed { background: #fee4e2; color: var(--bad); }
    .badge.PENDING, .badge.RUNNING, .badge.Running, .badge.BackToSource { background: #fef0c7; color: var(--warn); }
    .muted { color: var(--muted); }
    .progress { display: inline-block; width: 140px; height: 10px; background: #eef0f4; border-radius: 5px; overflow: hidden; vertical-align: middle; }
    .progress > span { display: block; height: 100%; background: var(--accent); }
    form.inline { display: grid; grid-template-columns: 160px 1fr; gap: 8px 12px; max-width: 720px; align-items: center; }
    form.inline .actions { grid-column: 2; }
    input[type=text], input[type=password], input[type=number], select { padding: 6px 8px; border: 1px solid #d0d5dd; border-radius: 6px; font: inherit; width: 100%; }
    button { padding: 6px 14px; border: 0; border-radius: 6px; background: var(--accent); color: #fff; font: inherit; cursor: pointer; }
    button.secondary { background: #eef0f4; color: var(--fg); }
    button.danger { background: #fee4e2; color: var(--bad); }
    header button { background: #3d3275; }
    #error { margin: 12px 24px 0; padding: 10px 14px; border-radius: 6px; background: #fee4e2; color: var(--bad); }
    .secret { padding: 10px; background: #fffaeb; border: 1px solid #fedf89; border-radius: 6px; margin: 10px 0; }
    .signin { max-width: 360px; margin: 60px auto; }
    .signin form { display: grid; gap: 10px; }
    """#
}
