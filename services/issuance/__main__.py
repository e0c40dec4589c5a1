from services.issuance.main import main

main()
