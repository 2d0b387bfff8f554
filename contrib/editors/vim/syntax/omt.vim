" Vim syntax file
" Language: .omt transaction specifications (Omerta)
" Install:  copy syntax/ and ftdetect/ into ~/.vim/ (or ~/.config/nvim/)

if exists("b:current_syntax")
  finish
endif

syn case match
syn keyword omtDeclaration transaction imports parameters enum message block actor function native
syn keyword omtDeclaration from to by signed
syn keyword omtActorItem   store trigger state
syn keyword omtStateFlag   initial terminal
syn keyword omtEvent       on auto timeout when lookup
syn keyword omtAction      STORE SEND BROADCAST APPEND
syn keyword omtRuntime     message peer_id session_id chain

syn case ignore
syn keyword omtControl     else if then for in return
syn keyword omtOperator    and or not
syn keyword omtConstant    true false null
syn case match

syn match   omtType        "\<\(hash\|peer_id\|uint\|int\|float\|bool\|string\|str\|bytes\|timestamp\|signature\|dict\|any\|list\|map\)\>"
syn match   omtBuiltin     "\<[A-Z][A-Z0-9_]*\ze\s*("
syn match   omtArrow       "->\|=>"
syn match   omtNumber      "\<\d\+\(\.\d\+\)\=\([eE][+-]\=\d\+\)\=\>"
syn region  omtString      start=+"+ end=+"+ oneline
syn match   omtComment     "#.*$" contains=omtTodo
syn keyword omtTodo        contained TODO FIXME XXX NOTE

hi def link omtDeclaration Structure
hi def link omtActorItem   Statement
hi def link omtStateFlag   StorageClass
hi def link omtEvent       Conditional
hi def link omtAction      Function
hi def link omtRuntime     Identifier
hi def link omtControl     Keyword
hi def link omtOperator    Operator
hi def link omtConstant    Constant
hi def link omtType        Type
hi def link omtBuiltin     Function
hi def link omtArrow       Operator
hi def link omtNumber      Number
hi def link omtString      String
hi def link omtComment     Comment
hi def link omtTodo        Todo

let b:current_syntax = "omt"
