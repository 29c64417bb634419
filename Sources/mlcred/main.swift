print("mlcred")
