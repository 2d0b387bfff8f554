" .omt transaction specifications (Omerta)
autocmd BufRead,BufNewFile *.omt setfiletype omt
