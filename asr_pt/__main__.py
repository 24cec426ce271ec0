from asr_pt.cli import main

main()
